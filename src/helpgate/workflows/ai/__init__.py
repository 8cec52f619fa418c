"""AI triage of new tickets and reply drafts: Gemini or an OpenAI-compatible endpoint with structured output, and what
stands in for them: a classifier learned from the agents' reviews once it beats the keyword heuristic, else that."""
