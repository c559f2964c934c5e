import { PeftError } from "../errors.js";

/**
 * What the browser builds of the file-system modules do: say that this needs a file
 * system, and what to use instead.
 */
export function noFileSystem(what: string): never {
  throw new PeftError(
    "E_PLATFORM",
    `${what} needs a file system, which browsers do not give: read a model's or an adapter's files into memory (fetchModelFiles, filesFromBlobs, new MemoryFiles) and pass them instead of a path, and take an adapter's files as bytes with peft.adapterFiles() (a training checkpoint's with trainer.checkpointFiles())`,
  );
}
