/** Redis keys the contenders of the mutual-exclusion test share, under the test's prefix. */
export function contentionKeys(prefix: string) {
  return {
    ready: `${prefix}test:ready`,
    go: `${prefix}test:go`,
    inside: `${prefix}test:inside`,
    violations: `${prefix}test:violations`,
    fenceViolations: `${prefix}test:fence-violations`,
    aborted: `${prefix}test:aborted`,
    lastFence: `${prefix}test:last-fence`,
    fences: `${prefix}test:fences`,
  };
}
