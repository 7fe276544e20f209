/** An error the user can fix (a bad flag, a missing file, an unusable CSV): exit code 2, no stack. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}
