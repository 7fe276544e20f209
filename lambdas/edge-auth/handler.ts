// Placeholder of H-edge so the construct bundles before H-edgert's verifier merges; H-edgert owns this file.
export const handler = async (event: { Records: Array<{ cf: { request: unknown } }> }) => event.Records[0]!.cf.request;
