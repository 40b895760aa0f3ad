"""Baton's local stack, on one machine with no AWS account.

- stack: starts, inspects and stops it (`python -m baton_local.stack up|down|status`);
- moto_host: moto in server mode with compat, one fix per moto gap, a module a service;
- deploy: template.yaml to the local CloudFormation; cfn_yaml reads it;
- image: the worker image, built here; demo: `make demo`;
- stack_client: a client of the running stack (the demo, the tests, the soak);
- testing: what the tests and the benchmarks share (ports, processes, clients).

Installed editable into .venv by `make venv` (local/pyproject.toml). Importing the
package imports nothing else: `make local-down` runs `baton_local.stack` with the
system Python, outside the virtualenv.
"""
