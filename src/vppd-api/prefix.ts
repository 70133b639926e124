/** vppd's own API, outside Graph's namespace: things Graph has no property for. */
export const vppdApiPrefix = '/vppd/v1';
