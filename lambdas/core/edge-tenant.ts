/**
 * The value of the `x-edge-tenant` header for a tenant: percent-encoded (encodeURIComponent), so
 * that any tenant the router accepts (any well-formed Unicode string) fits a header value, and
 * two tenants never share one. The edge verifier writes it; the router compares it.
 */
export function edgeTenantHeaderValue(tenantId: string): string {
  return encodeURIComponent(tenantId);
}
