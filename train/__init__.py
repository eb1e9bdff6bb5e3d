"""Everything that learns or judges: config, data, fine-tuning, thresholds, evaluation, reports."""
