"""Event history: replay the topics or the archive, rebuild state, restore the embedded broker."""
