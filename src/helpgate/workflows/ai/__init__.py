"""AI triage of new tickets and reply drafts: Gemini or an OpenAI-compatible endpoint with structured output, and a
keyword heuristic that stands in for them."""
