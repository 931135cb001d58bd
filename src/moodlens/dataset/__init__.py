"""FER2013 tools: readers, data exploration, model evaluation and their figures (training and release only)."""
