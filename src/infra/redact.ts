/**
 * Removes secrets from text before it is logged or posted: anything shaped like a nodekey (64 hex
 * characters, with or without 0x), Slack tokens, PEM private key blocks and AWS secret keys. Node IDs are
 * 128 hex characters and addresses 40, so they survive; transaction and block hashes (0x + 64 hex) are
 * redacted too, which is the safe side of the trade.
 */
const PATTERNS: readonly RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
  /\bxox[abposr]-[A-Za-z0-9-]+/g,
  /\bxapp-[A-Za-z0-9-]+/g,
  /(?<![0-9a-fA-F])(?:0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])/g,
  /(?<=aws_secret_access_key\s*[=:]\s*)[A-Za-z0-9/+=]{40}/gi,
];

export function redactSecrets(text: string): string {
  let out = text;
  for (const pattern of PATTERNS) out = out.replace(pattern, '[redacted]');
  return out;
}
