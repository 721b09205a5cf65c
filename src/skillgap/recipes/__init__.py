"""Recipes: the loop's stages wired into short, readable scripts. Copy one to change it."""
