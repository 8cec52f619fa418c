"""AI triage of new tickets: Gemini with structured output, and a keyword heuristic that stands in for it."""
