import os

from hypothesis import settings

# Deadlines flake on a loaded 2-core CI machine; the number of examples is what matters.
settings.register_profile("ci", deadline=None, max_examples=200, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
