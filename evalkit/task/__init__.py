"""What to ask and how: the Task and Sample spec, YAML loading, validation, rendering a request
(its messages and images)."""
