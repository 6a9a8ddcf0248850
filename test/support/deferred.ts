/**
 * A promise the test settles itself, so it decides exactly when work ends: holds a handler inside
 * its slot, or a gauge's work, until the test says so.
 */
export class Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve!: (value: T) => void;
  reject!: (error: unknown) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}
