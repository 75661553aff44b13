"""Recorder of real instrumentation-library traces (fake OpenAI server + a small agent): see record.py."""
