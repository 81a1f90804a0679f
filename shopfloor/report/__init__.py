"""Pictures and pages of a run's verdicts: matplotlib figures (figures), the self-contained HTML
report and KFP HTML/Markdown content (html), and the steps' figure drawing (steps)."""
