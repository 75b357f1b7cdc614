"""vlprune: drop visual tokens that carry no new information from Qwen-VL-family models."""
