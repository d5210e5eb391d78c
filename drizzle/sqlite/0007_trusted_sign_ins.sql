CREATE TABLE `trusted_sign_ins` (
	`key` text PRIMARY KEY NOT NULL,
	`expires_at` integer NOT NULL
);
