ALTER TABLE `sessions` ADD `browser_token_hash` text;--> statement-breakpoint
ALTER TABLE `sessions` ADD `parent_id` text REFERENCES sessions(id) ON DELETE cascade;--> statement-breakpoint
CREATE UNIQUE INDEX `sessions_browser_token_hash_unique` ON `sessions` (`browser_token_hash`);--> statement-breakpoint
CREATE INDEX `sessions_parent_id_idx` ON `sessions` (`parent_id`);