"""The lake: filesystems by URI (file, hdfs, s3), spool -> bronze publishing, bronze manifest."""
