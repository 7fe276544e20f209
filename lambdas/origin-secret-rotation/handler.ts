// Placeholder of H-edge so the construct bundles before H-edgert's rotation handler merges; H-edgert owns this file.
export const handler = async (): Promise<void> => {
  throw new Error('origin secret rotation: placeholder handler');
};
