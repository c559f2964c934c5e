import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { FileNotFoundError } from "../errors.js";

/** The Hugging Face hub cache: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(): string {
  const env = process.env;
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, "hub");
  return join(homedir(), ".cache", "huggingface", "hub");
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/** A snapshot of a `models--org--name` cache folder: refs/main if present, else the only or newest one. */
function snapshotOf(repoDir: string): string | null {
  const snapshots = join(repoDir, "snapshots");
  if (!isDir(snapshots)) return null;
  const ref = join(repoDir, "refs", "main");
  if (existsSync(ref)) {
    const rev = readFileSync(ref, "utf8").trim();
    if (isDir(join(snapshots, rev))) return join(snapshots, rev);
  }
  const revs = readdirSync(snapshots)
    .map((r) => join(snapshots, r))
    .filter(isDir)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return revs[0] ?? null;
}

/**
 * Finds a model directory: a local folder with config.json, a `models--org--name`
 * cache folder, or a hub id ("org/name") already present in the local hub cache.
 * Nothing is downloaded.
 */
export function resolveModelDir(pathOrId: string): string {
  const tried: string[] = [];
  if (isDir(pathOrId)) {
    if (existsSync(join(pathOrId, "config.json"))) return pathOrId;
    tried.push(pathOrId);
    const snap = snapshotOf(pathOrId);
    if (snap !== null && existsSync(join(snap, "config.json"))) return snap;
  }
  if (/^[\w.-]+\/[\w.-]+$/.test(pathOrId)) {
    const repo = join(hubCacheDir(), `models--${pathOrId.replace("/", "--")}`);
    tried.push(repo);
    const snap = snapshotOf(repo);
    if (snap !== null && existsSync(join(snap, "config.json"))) return snap;
  }
  throw new FileNotFoundError(
    pathOrId,
    `no model directory with a config.json here${tried.length ? ` (looked in ${tried.join(", ")})` : ""}; peft-ts loads local folders and the local Hugging Face cache only`,
  );
}
