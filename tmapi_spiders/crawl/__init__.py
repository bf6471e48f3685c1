"""The crawl: seeds in, checked records out through Scrapy's item path, written for real."""
