"""Alice: weak-to-strong generalization for LLMs. Importing the package turns the libraries' own progress
bars off (``ALICE_LIBRARY_PROGRESS=1`` keeps them); the project's progress is in ``alice.progress``. On a
machine that cannot reach the Hugging Face Hub it also turns their offline mode on (``alice.hub``)."""

from .hub import offline_without_hub
from .progress import quiet_library_bars

quiet_library_bars()
offline_without_hub()
