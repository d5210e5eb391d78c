CREATE TABLE `signing_keys` (
	`kid` text PRIMARY KEY NOT NULL,
	`alg` text NOT NULL,
	`public_jwk` text,
	`private_jwk` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`retired_at` integer,
	`live_until` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `signing_keys_current_alg_unique` ON `signing_keys` (`alg`) WHERE retired_at is null;