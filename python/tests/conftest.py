import os
import sys

# Run against the package in this source tree, wherever pytest is started from.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
