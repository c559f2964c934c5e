/**
 * Typed errors. Every error peft-ts throws on bad input is a `PeftError` with a stable
 * `code`, and its message says what was expected, what was found, and where.
 */
export class PeftError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Shapes that do not fit an op: broadcasting, matmul inner dims, axis out of range. */
export class ShapeError extends PeftError {
  readonly op: string;
  constructor(op: string, message: string) {
    super("E_SHAPE", `${op}: ${message}`);
    this.op = op;
  }
}

/** A dtype an op does not accept, or two dtypes that may not meet (mixed matmul outside autocast). */
export class DTypeError extends PeftError {
  readonly op: string;
  constructor(op: string, message: string) {
    super("E_DTYPE", `${op}: ${message}`);
    this.op = op;
  }
}

/** An index outside the axis it indexes (gather, embedding, slice bounds). */
export class IndexError extends PeftError {
  readonly op: string;
  constructor(op: string, message: string) {
    super("E_INDEX", `${op}: ${message}`);
    this.op = op;
  }
}

/** A value outside what an argument allows (negative probability, unknown option). */
export class ValueError extends PeftError {
  constructor(message: string) {
    super("E_VALUE", message);
  }
}

/** Autograd misuse: backward on a non-scalar without a gradient, or on a freed graph. */
export class AutogradError extends PeftError {
  constructor(message: string) {
    super("E_AUTOGRAD", message);
  }
}

/** A backend that cannot be selected or does not implement a kernel. */
export class BackendError extends PeftError {
  constructor(message: string) {
    super("E_BACKEND", message);
  }
}

/** A file whose bytes or JSON do not follow its format (safetensors, config.json, adapters). */
export class FileFormatError extends PeftError {
  readonly file: string;
  constructor(file: string, message: string) {
    super("E_FORMAT", `${file}: ${message}`);
    this.file = file;
  }
}

/** A file or directory that should exist and does not. */
export class FileNotFoundError extends PeftError {
  readonly file: string;
  constructor(file: string, message: string) {
    super("E_NOT_FOUND", `${file}: ${message}`);
    this.file = file;
  }
}

/** An output path that cannot be written safely: a symlink planted in it, a lock another run holds. */
export class OutputError extends PeftError {
  readonly file: string;
  constructor(file: string, message: string) {
    super("E_OUTPUT", `${file}: ${message}`);
    this.file = file;
  }
}
