"""Audio: multi-format (waveform / log-mel) contrastive learning, after Wang & van den Oord (2021)."""
