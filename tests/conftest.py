"""Fixtures shared by the test modules."""

import pytest
from helpers import random_images

from nas.evaluate import data


@pytest.fixture(scope="module")
def noise() -> data.Cifar10:
    train, test = random_images(300, 0), random_images(20, 1)
    return data.Cifar10(*train, *test)
