"""The assistant (docs/agent.md): tools over blase's API, a conversation loop with autonomy levels, and
rule-based recommendations without a model."""
