"""Small test doubles shared by several test modules."""

from __future__ import annotations


class ListSource:
    """A minimal in-memory SampleSource: a list of ``Sample`` records with ids and a survey."""

    def __init__(self, samples, survey):
        self.samples, self.survey = samples, survey
        self.ids = [s.id for s in samples]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]
