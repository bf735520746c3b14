ALTER TABLE payments DROP COLUMN buyer_cancelled_at;
