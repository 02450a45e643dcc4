"""Alice: weak-to-strong generalization for LLMs. Importing the package turns the libraries' own progress
bars off (``ALICE_LIBRARY_PROGRESS=1`` keeps them); the project's progress is in ``alice.progress``."""

from .progress import quiet_library_bars

quiet_library_bars()
