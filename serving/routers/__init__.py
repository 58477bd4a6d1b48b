"""One router per resource of the HTTP API (`/api/v1/...`), plus the probes and metrics at the root."""
