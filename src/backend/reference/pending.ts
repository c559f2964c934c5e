export function pending(): never {
  throw new Error("pending");
}
