"""Workflows from plain language (seeds 002, 003): a model drafts a definition from a request,
flowloom validates it, and the model repairs what validation found, a bounded number of times.

``catalog.py`` tells the model what node types exist; ``prompting.py`` holds the instructions,
the answer's JSON Schema and the repair message; ``generator.py`` runs the draft-validate-repair
loop and reports every attempt, which the API and the CLI keep in the generation history.
"""

from flowloom.generation.generator import Attempt, Generated, WorkflowGenerator

__all__ = ["Attempt", "Generated", "WorkflowGenerator"]
