"""ASTRA's bfcl plugin: the Berkeley Function Calling Leaderboard's multi-turn entries as arenas
(their stateful bfcl-eval classes run in the sandbox), a runtime that walks their user turns,
and a verifier that applies BFCL's own multi-turn checks. Needs the optional bfcl-eval package
(``pip install --no-deps bfcl-eval mpmath``)."""
