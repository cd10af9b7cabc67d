"""What a secret looks like, below every stage: the names, the rules, the shapes, the scanner.

Base-layer text logic that imports nothing of ci_gate above `ci_gate.model`, so the error base and
`ci_gate.redaction` (which masks every message with these rules) can stand on it:

- `names`: which variable names hold a secret (`is_secret_name`);
- `rules`: Anchore's five defaults and ci-gate's token formats (`DEFAULT_RULES`), `SecretSettings`,
  and `SecretRuleError` (a `ValueError`) for a pattern that does not compile;
- `masking`: what is secret by shape alone, how a secret is masked, a finding's preview;
- `scanner`: `SecretScanner`, the rules applied to file contents, config strings and build files;
- `urls`: the credentials inside a URL (query, user information, webhook path secrets) and the URL as it
  may be shown.

The analyze stage reads the rules file (`ci_gate.analyze.secret_settings`, which turns a
`SecretRuleError` into its `AnalysisError`) and the image config blob
(`ci_gate.analyze.image_config.secrets_in_config`, which knows which layer a history step made).
"""
