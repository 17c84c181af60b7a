import type { Logger } from "pino";
import { openSqliteStore } from "./sqlite/store.js";
import type { Durability, EventStore } from "./types.js";

/** What opening the store needs from the server's configuration. */
export interface StoreConfig {
  dbPath: string;
  durability: Durability;
}

/**
 * Opens the configured store: the embedded SQLite store, today the only one.
 * Throws StoreError (kind `unusable`) when the database cannot be used.
 * Nothing outside src/store/ knows which implementation runs.
 */
export function openStore(config: StoreConfig, log: Logger): Promise<EventStore> {
  return openSqliteStore(config.dbPath, config.durability, log);
}
