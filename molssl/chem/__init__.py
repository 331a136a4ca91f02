"""Molecules: featurization, store, augmentations, encoders, pre-training and fine-tuning."""
