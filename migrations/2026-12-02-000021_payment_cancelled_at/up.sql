-- When the buyer last left PayPal with "cancel" (cleared when they come back approved).
ALTER TABLE payments ADD COLUMN buyer_cancelled_at TIMESTAMPTZ;
