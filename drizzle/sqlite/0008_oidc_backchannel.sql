ALTER TABLE `oidc_clients` ADD `backchannel_logout_uri` text;--> statement-breakpoint
ALTER TABLE `oidc_codes` ADD `browser_session_id` text;--> statement-breakpoint
ALTER TABLE `oidc_grants` ADD `browser_session_id` text;