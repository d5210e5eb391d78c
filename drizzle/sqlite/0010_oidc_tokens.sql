ALTER TABLE `oidc_clients` ADD `refresh` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `oidc_clients` ADD `machine` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `oidc_clients` ADD `id_token_alg` text;--> statement-breakpoint
ALTER TABLE `oidc_codes` ADD `amr` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `oidc_grants` ADD `amr` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `sessions` ADD `auth_time` integer;--> statement-breakpoint
ALTER TABLE `sessions` ADD `amr` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `sessions` ADD `client_id` text;