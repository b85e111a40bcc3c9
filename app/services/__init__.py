"""Use cases: plain functions over the models, with collaborators passed in. No Flask here."""
