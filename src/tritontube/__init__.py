"""TritonTube: a video platform built as a stream-processing data platform."""
