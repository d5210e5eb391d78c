ALTER TABLE "users" ALTER COLUMN "password_hash" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "oidc_clients" ADD COLUMN "require_passkey" boolean DEFAULT false NOT NULL;