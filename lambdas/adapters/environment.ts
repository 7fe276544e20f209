/**
 * Reads the JSON configuration a construct put in a function's environment variable.
 * @throws when the variable is missing or empty (the function was not deployed by the construct)
 */
export function readJsonEnv<T>(name: string): T {
  const raw = process.env[name];
  if (!raw) throw new Error(`${name} is not set`);
  return JSON.parse(raw) as T;
}
