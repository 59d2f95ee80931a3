"""Survey analysis (docs/surveys.md): design-based estimation as R's survey package does it
(`design`), the office, user and follow-up surveys' tables (`tables`), and time use weighted up
to full-time equivalents (`time_use`)."""
