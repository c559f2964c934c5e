import { afterEach } from "vitest";

// Vitest's worker reports progress to the main process over RPC with a 60 s timeout. Between
// synchronous tests the worker runs only microtasks, so replies wait until the file ends;
// a file of synchronous tests longer than a minute (the CLI tests, each running the command
// to completion) then failed with "Timeout calling onTaskUpdate". One event-loop turn after
// each test lets the replies in.
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
