import NICCore
